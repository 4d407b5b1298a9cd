package io.wsguard.route;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class RequestPathsTest {

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource({
        "/chat, /chat",
        "/ws/room/7, /ws/room/7",
        "/%61dmin, /admin",
        "/rooms/caf%C3%A9, /rooms/café",
        "/chat../admin, /chat../admin",
        "/a/.well/b, /a/.well/b",
        "/, /",
    })
    void routesMatchTheDecodedPath(String raw, String routable) {
        assertThat(RequestPaths.routable(raw)).isEqualTo(routable);
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "/public/../admin",
                "/public/./admin",
                "/..",
                "/.",
                "/a/b/..",
                "/admin;x=1",
                "/a;/b",
                "/a%2Fb",
                "/a%2fb",
                "/a%00b",
                "/a%5Cb",
                "/a%zz",
                "/a%",
                "admin",
                "",
                "/%2e%2e/admin",
                "/%2E/admin",
            })
    void pathsThatMayMeanSomethingElseUpstreamMatchNoRoute(String raw) {
        assertThat(RequestPaths.routable(raw)).isNull();
    }

    @ParameterizedTest
    @CsvSource({
        "../admin, true",
        "./x, true",
        "room/.., true",
        "room/7, false",
        "..room, false",
        "'', false",
        "/, false"
    })
    void dotSegmentsAreFoundAnywhereInARemainder(String remainder, boolean found) {
        assertThat(RequestPaths.hasDotSegment(remainder)).isEqualTo(found);
    }
}
