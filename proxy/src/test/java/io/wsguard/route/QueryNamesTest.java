package io.wsguard.route;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Which client pairs name a protected parameter; FixedQueryTest checks the same through a running proxy. */
class QueryNamesTest {

    private static final Set<String> ROLE = QueryNames.ofQuery("tenant=acme&role=guest");

    @ParameterizedTest(name = "{0}: {1}")
    @CsvSource(
            delimiter = '|',
            value = {
                "role=admin          | true",
                "%72%6f%6c%65=admin  | true",
                "rol%25%36%35=admin  | true",
                "rol%252565=admin    | true",
                "%C5%BFole=admin     | false",
                "%C5%BFOLE=x         | false",
                "ſole=x              | false",
                "ROLE=x              | true",
                "Role[a][b]=x        | true",
                "%20role=x           | true",
                "role                | true",
                "a=1;role=2          | true",
                "a=1;;b=2            | false",
                "rolE%zz=x           | false",
                "role_x=1            | false",
                "x=role              | false",
                "''                  | false",
                "=role               | false",
            })
    void namesTheProtectedParameterInAnyReading(String pair, boolean names) {
        assertThat(QueryNames.names(pair, ROLE)).isEqualTo(names);
    }

    @Test
    void foldsTheLettersThatFoldToAscii() {
        // The long s folds to S and the Kelvin sign to k: "ſ" is "s" to a case-insensitive framework.
        final Set<String> session = QueryNames.ofNames(List.of("session"));
        assertThat(QueryNames.names("%C5%BFession=x", session)).isTrue();
        assertThat(QueryNames.names("\u017Fession=x", session)).isTrue();
        assertThat(QueryNames.names("%E2%84%AAey=x", QueryNames.ofNames(List.of("key"))))
                .isTrue();
    }

    @Test
    void aTargetNameReadsAsItsPhpAndBracketForms() {
        final Set<String> fixed = QueryNames.ofQuery("filter[tenant]=acme&display.name=x");
        assertThat(QueryNames.names("filter[tenant]=evil", fixed)).isTrue();
        // PHP: a plain filter=x replaces the whole filter array.
        assertThat(QueryNames.names("filter=evil", fixed)).isTrue();
        assertThat(QueryNames.names("display_name=evil", fixed)).isTrue();
        assertThat(QueryNames.names("filters=evil", fixed)).isFalse();
        assertThat(QueryNames.ofQuery(null)).isEmpty();
        assertThat(QueryNames.names("role=x", Set.of())).isFalse();
    }
}
