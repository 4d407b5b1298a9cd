package io.wsguard;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The repository's Markdown is read in a clone or an unpacked release, with nothing next to it: every
 * relative link must name a file inside the repository that exists.
 */
class RepositoryLinksTest {

    /** Surefire runs in {@code proxy/}. */
    private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    /** {@code [text](target)} and {@code [text](target#anchor)}; absolute URLs are left alone. */
    private static final Pattern LINK = Pattern.compile("\\]\\(([^)#\\s]+)(?:#[^)\\s]*)?\\)");

    /** Build output and installed packages: not the repository's own documents. */
    private static boolean generated(Path relative) {
        for (Path part : relative) {
            if (List.of("target", "node_modules", ".git").contains(part.toString())) {
                return true;
            }
        }
        return false;
    }

    @Test
    void everyRelativeLinkNamesAFileInTheRepository() throws IOException {
        final List<Path> documents;
        try (Stream<Path> files = Files.walk(ROOT)) {
            documents = files.filter(p -> p.toString().endsWith(".md"))
                    .filter(p -> !generated(ROOT.relativize(p)))
                    .toList();
        }
        assertThat(documents).contains(ROOT.resolve("README.md"), ROOT.resolve("docs/policy.md"));

        final List<String> broken = new ArrayList<>();
        for (Path document : documents) {
            final Matcher link = LINK.matcher(Files.readString(document));
            while (link.find()) {
                final String target = link.group(1);
                if (target.matches("[a-z]+:.*")) {
                    continue;
                }
                final Path resolved = document.getParent().resolve(target).normalize();
                if (!resolved.startsWith(ROOT) || !Files.exists(resolved)) {
                    broken.add(ROOT.relativize(document) + ": " + target);
                }
            }
        }
        assertThat(broken)
                .as("links to files outside the repository, or to none")
                .isEmpty();
    }
}
