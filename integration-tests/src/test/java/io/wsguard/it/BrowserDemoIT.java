package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The demo as a user runs it: {@code java -jar wsguard.jar demo}, then a real browser (headless
 * Chromium) opens the printed page URL. The page connects to the proxy over wss, sends a message
 * and renders the chat room's broadcast of it; the test reads the rendered DOM over the DevTools
 * protocol and checks that the proxy relayed the message (its metrics) and the room saw it.
 *
 * <p>The demo policy's ports are fixed (8443, 9000, 9090): the test fails at once, naming the port,
 * when one of them is taken. Chromium must be installed ({@code apt-get install -y chromium});
 * without it the test fails, it does not skip.
 */
@Timeout(120)
class BrowserDemoIT {

    private static final List<Integer> DEMO_PORTS = List.of(8443, 9000, 9090);
    private static final String CHROMIUM = System.getProperty("chromium", "/usr/bin/chromium");
    private static final String SENT = "hello from chromium";
    private static final Duration READY = Duration.ofSeconds(60);

    @TempDir
    Path tmp;

    private Process demo;
    private Process chromium;
    private Path demoOut;
    private Path demoErr;
    private Path chromiumErr;

    @AfterEach
    void stop() throws Exception {
        if (chromium != null) {
            final List<ProcessHandle> children = chromium.descendants().toList();
            chromium.destroy();
            children.forEach(ProcessHandle::destroy);
            if (!chromium.waitFor(10, TimeUnit.SECONDS)) {
                chromium.destroyForcibly();
                children.forEach(ProcessHandle::destroyForcibly);
            }
        }
        if (demo != null) {
            demo.destroy(); // SIGTERM: the demo drains and stops
            if (!demo.waitFor(30, TimeUnit.SECONDS)) {
                demo.destroyForcibly();
                fail("wsguard demo did not stop within 30s of SIGTERM\n" + dump());
            }
        }
    }

    @Test
    void chromiumChatsThroughTheProxy() throws Exception {
        final Path jar = Path.of(requiredProperty("wsguard.jar"));
        final Path repo = Path.of(requiredProperty("wsguard.root"));
        assertThat(jar).as("the proxy jar (mvn package first)").isRegularFile();
        assertThat(repo.resolve("policies/demo.yaml")).as("the demo policy").isRegularFile();
        if (!Files.isExecutable(Path.of(CHROMIUM))) {
            fail("headless Chromium is needed at " + CHROMIUM
                    + " and is missing: install it (apt-get install -y chromium)" + " or point -Dchromium=PATH at it");
        }
        for (int port : DEMO_PORTS) {
            assertPortFree(port);
        }

        // A copy of policies/ as the demo root: certs/dev and logs/ are written there, not into the checkout.
        final Path root = tmp.resolve("root");
        copyTree(repo.resolve("policies"), root.resolve("policies"));
        demoOut = tmp.resolve("demo.out");
        demoErr = tmp.resolve("demo.err");
        demo = new ProcessBuilder(javaBin(), "-jar", jar.toString(), "demo", "--root", root.toString())
                .directory(tmp.toFile())
                .redirectOutput(demoOut.toFile())
                .redirectError(demoErr.toFile())
                .start();
        // The last line the demo prints: every line before it is in the file once it is.
        awaitLine(demo, demoOut, line -> line.startsWith("wsguard demo: Ctrl-C to stop"), READY);
        final String openLine = awaitLine(demo, demoOut, line -> line.startsWith("wsguard demo: open "), READY);
        final String pageUrl =
                openLine.substring("wsguard demo: open ".length()).strip();
        // The dev token rides in the fragment, which the browser never sends to a server.
        assertThat(pageUrl).startsWith("http://localhost:9000/?ws=wss://localhost:8443/chat#token=");
        final String token = pageUrl.substring(pageUrl.indexOf("#token=") + "#token=".length());
        assertThat(token.split("\\.")).hasSize(3);
        final String pageUrlWithoutToken = pageUrl.substring(0, pageUrl.indexOf('#'));
        // The same page from another origin: 127.0.0.1 is not localhost to a browser.
        final String foreignUrl = pageUrlWithoutToken.replace("http://localhost:9000", "http://127.0.0.1:9000")
                + "&autotest=1#token=" + token;
        final String stdout = Files.readString(demoOut);
        assertThat(stdout)
                .contains("wsguard: listening on wss://0.0.0.0:8443")
                .contains("wsguard: admin on http://127.0.0.1:9090")
                .contains("wsguard: audit log at " + root.resolve("logs/audit.jsonl"))
                .contains("import " + root.resolve("certs/dev/ca.crt"));
        assertThat(root.resolve("certs/dev/ca.crt")).isRegularFile();

        chromiumErr = tmp.resolve("chromium.err");
        final Path profile = Files.createDirectories(tmp.resolve("chromium-profile"));
        chromium = new ProcessBuilder(
                        CHROMIUM,
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-quic",
                        "--no-first-run",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--ignore-certificate-errors",
                        "--user-data-dir=" + profile,
                        "--remote-debugging-port=0",
                        pageUrlWithoutToken + "&autotest=1#token=" + token)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(chromiumErr.toFile())
                .start();
        final String devtools =
                awaitLine(chromium, chromiumErr, line -> line.startsWith("DevTools listening on "), READY);
        final Matcher port = Pattern.compile("ws://127\\.0\\.0\\.1:(\\d+)/").matcher(devtools);
        assertThat(port.find()).as(devtools).isTrue();

        // The page sets its title once it has rendered the room's broadcast of its own message.
        final HttpClient http =
                HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        final URI targets = URI.create("http://127.0.0.1:" + port.group(1) + "/json/list");
        final long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        String page = null;
        while (System.nanoTime() < deadline) {
            page = demoPage(
                    http.send(HttpRequest.newBuilder(targets).build(), HttpResponse.BodyHandlers.ofString())
                            .body(),
                    "http://localhost:9000/");
            if (page != null && page.contains("\"title\": \"received: " + SENT + "\"")) {
                break;
            }
            Thread.sleep(200);
        }
        if (page == null || !page.contains("\"title\": \"received: " + SENT + "\"")) {
            fail("the page never showed the echo of its message; its DevTools target: " + page + "\n" + dump());
        }

        final Matcher debugger =
                Pattern.compile("\"webSocketDebuggerUrl\": \"(ws://[^\"]+)\"").matcher(page);
        assertThat(debugger.find()).as(page).isTrue();
        final String dom = evaluate(http, URI.create(debugger.group(1)), "document.documentElement.outerHTML");
        assertThat(dom)
                .contains("<li id=\"autotest-received\"><span class=\"user\">bot:</span><span class=\"text\">" + SENT
                        + "</span></li>")
                .contains("connected through wsguard");

        // The room renders messages as HTML; wsguard sanitizes their text on the way in. A user types an
        // XSS payload: the handler never runs (the title stays), the formatting survives, the audit says so.
        final URI pageDebugger = URI.create(debugger.group(1));
        evaluate(
                http,
                pageDebugger,
                "(function(){var t=document.getElementById('text');"
                        + "t.value='<b>bold</b><img src=x onerror=document.title=/pwned/.source>xss-probe';"
                        + "document.getElementById('send').click();return 'sent';})()");
        String rendered = "";
        final long xssDeadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        while (!rendered.contains("xss-probe") && System.nanoTime() < xssDeadline) {
            Thread.sleep(200);
            rendered = evaluate(
                    http,
                    pageDebugger,
                    "Array.from(document.querySelectorAll('.text')).map(function(e){return e.innerHTML;}).join('|')");
        }
        assertThat(rendered)
                .as("the rendered messages")
                .contains("<b>bold</b>xss-probe")
                .doesNotContain("<img", "onerror");
        assertThat(evaluate(http, pageDebugger, "document.title")).isNotEqualTo("pwned");

        // The proxy relayed it (its metrics), and the chat room got it (the demo's log line).
        final String metrics = http.send(
                        HttpRequest.newBuilder(URI.create("http://127.0.0.1:9090/metrics"))
                                .build(),
                        HttpResponse.BodyHandlers.ofString())
                .body();
        final Matcher inbound = Pattern.compile(
                        "wsguard_messages_total\\{direction=\"inbound\",route=\"chat\",upstream=\"[^\"]+\"} (\\d+)")
                .matcher(metrics);
        assertThat(inbound.find()).as("inbound message counter in\n" + metrics).isTrue();
        assertThat(Double.parseDouble(inbound.group(1))).isGreaterThanOrEqualTo(1);
        assertThat(Files.readString(demoOut)).contains("demo upstream: message #1 (");

        // The foreign page holds the same valid token, yet its origin is not allowed: wsguard answers
        // 403, the browser reports the failed handshake, the page sees 1006 and the audit log says why.
        // Headless Chromium takes one URL on its command line; the second tab is opened over DevTools.
        final HttpResponse<String> opened = http.send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port.group(1) + "/json/new?"
                                + URLEncoder.encode(foreignUrl, StandardCharsets.UTF_8)))
                        .PUT(HttpRequest.BodyPublishers.noBody())
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(opened.statusCode()).as(opened.body()).isEqualTo(200);
        String foreign = null;
        while (System.nanoTime() < deadline) {
            foreign = demoPage(
                    http.send(HttpRequest.newBuilder(targets).build(), HttpResponse.BodyHandlers.ofString())
                            .body(),
                    "http://127.0.0.1:9000/");
            if (foreign != null && foreign.contains("\"title\": \"closed: 1006\"")) {
                break;
            }
            Thread.sleep(200);
        }
        if (foreign == null || !foreign.contains("\"title\": \"closed: 1006\"")) {
            fail("the page from the other origin was not refused; its DevTools target: " + foreign + "\n" + dump());
        }
        final Matcher foreignDebugger =
                Pattern.compile("\"webSocketDebuggerUrl\": \"(ws://[^\"]+)\"").matcher(foreign);
        assertThat(foreignDebugger.find()).as(foreign).isTrue();
        assertThat(logEntries(http, URI.create(foreignDebugger.group(1))))
                .as("Chromium's own console")
                .anySatisfy(entry ->
                        assertThat(entry).contains("wss://localhost:8443/chat").contains("403"));
        final Path audit = root.resolve("logs/audit.jsonl");
        final long auditDeadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        String refused = null;
        while (refused == null && System.nanoTime() < auditDeadline) {
            refused = Files.exists(audit)
                    ? Files.readAllLines(audit).stream()
                            .filter(l -> l.contains("\"reason\":\"origin_denied\"")
                                    && l.contains("\"origin\":\"http://127.0.0.1:9000\""))
                            .findFirst()
                            .orElse(null)
                    : null;
            Thread.sleep(200);
        }
        assertThat(refused)
                .as("the origin_denied audit line in " + audit)
                .isNotNull()
                .contains("\"status\":403");
        assertThat(Files.readString(audit)).doesNotContain(token);
        assertThat(Files.readAllLines(audit))
                .anySatisfy(line -> assertThat(line)
                        .contains("\"event\":\"modified\"")
                        .contains("\"reason\":\"sanitized\"")
                        .contains("\"sub\":\"demo-user\""))
                .noneSatisfy(line -> assertThat(line).contains("xss-probe"));
    }

    /**
     * The entries of the page's console log (the browser's own messages, such as a failed
     * WebSocket handshake), which Chromium replays on {@code Log.enable}.
     */
    private static List<String> logEntries(HttpClient http, URI debugger) throws Exception {
        final List<String> entries = new CopyOnWriteArrayList<>();
        final WebSocket ws = devtools(http, debugger, message -> {
            if (message.contains("\"method\":\"Log.entryAdded\"")) {
                entries.add(unescape(message));
            }
        });
        try {
            ws.sendText("{\"id\":1,\"method\":\"Log.enable\"}", true).get(5, TimeUnit.SECONDS);
            final long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (entries.stream().noneMatch(e -> e.contains("403")) && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            return entries;
        } finally {
            ws.abort();
        }
    }

    /** A DevTools protocol session with a page; {@code onMessage} gets every whole message. */
    private static WebSocket devtools(HttpClient http, URI debugger, Consumer<String> onMessage) throws Exception {
        final StringBuilder text = new StringBuilder();
        final CompletableFuture<WebSocket> connected = http.newWebSocketBuilder()
                .connectTimeout(Duration.ofSeconds(5))
                .buildAsync(debugger, new WebSocket.Listener() {
                    @Override
                    public CompletionStage<?> onText(WebSocket socket, CharSequence data, boolean last) {
                        text.append(data);
                        if (last) {
                            final String message = text.toString();
                            text.setLength(0);
                            onMessage.accept(message);
                        }
                        socket.request(1);
                        return null;
                    }
                });
        return connected.get(10, TimeUnit.SECONDS);
    }

    /**
     * The DevTools target (a flat JSON object) of the demo page served from {@code origin} in {@code /json/list}, or
     * null.
     */
    private static String demoPage(String targets, String origin) {
        final Matcher object = Pattern.compile("\\{[^{}]*}").matcher(targets);
        while (object.find()) {
            final String target = object.group();
            if (target.contains("\"type\": \"page\"")
                    && target.contains("autotest=1")
                    && target.contains("\"url\": \"" + origin)) {
                return target;
            }
        }
        return null;
    }

    /** Runs {@code expression} in the page over the DevTools protocol and returns its string value, JSON-escaped. */
    private static String evaluate(HttpClient http, URI debugger, String expression) throws Exception {
        final CompletableFuture<String> reply = new CompletableFuture<>();
        final WebSocket ws = devtools(http, debugger, message -> {
            if (message.startsWith("{\"id\":1,")) {
                reply.complete(message);
            }
        });
        try {
            ws.sendText(
                            "{\"id\":1,\"method\":\"Runtime.evaluate\",\"params\":{\"expression\":\"" + expression
                                    + "\",\"returnByValue\":true}}",
                            true)
                    .get(5, TimeUnit.SECONDS);
            final String message = reply.get(10, TimeUnit.SECONDS);
            final Matcher value =
                    Pattern.compile("\"value\":\"((?:[^\"\\\\]++|\\\\.)*+)\"").matcher(message);
            assertThat(value.find()).as(message).isTrue();
            return unescape(value.group(1));
        } finally {
            ws.abort();
        }
    }

    /** The text of a JSON string literal's body. */
    private static String unescape(String json) {
        final StringBuilder out = new StringBuilder(json.length());
        for (int i = 0; i < json.length(); i++) {
            final char c = json.charAt(i);
            if (c != '\\') {
                out.append(c);
                continue;
            }
            final char e = json.charAt(++i);
            switch (e) {
                case 'n' -> out.append('\n');
                case 't' -> out.append('\t');
                case 'r' -> out.append('\r');
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'u' -> {
                    out.append((char) Integer.parseInt(json.substring(i + 1, i + 5), 16));
                    i += 4;
                }
                default -> out.append(e);
            }
        }
        return out.toString();
    }

    /**
     * Waits for a line of {@code file} (a process's output) matching {@code wanted}; fails when the process exits
     * first.
     */
    private String awaitLine(Process process, Path file, Predicate<String> wanted, Duration timeout) throws Exception {
        final long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (Files.exists(file)) {
                for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                    if (wanted.test(line)) {
                        return line;
                    }
                }
            }
            if (!process.isAlive()) {
                fail(process.info().command().orElse("process") + " exited with " + process.exitValue()
                        + " before printing the line expected in " + file.getFileName() + "\n" + dump());
            }
            Thread.sleep(100);
        }
        return fail("no expected line in " + file.getFileName() + " within " + timeout + "\n" + dump());
    }

    private static void assertPortFree(int port) {
        try (ServerSocket socket = new ServerSocket()) {
            socket.setReuseAddress(true);
            socket.bind(new InetSocketAddress(InetAddress.getByName("0.0.0.0"), port));
        } catch (IOException e) {
            fail("port " + port
                    + " is in use, and policies/demo.yaml needs it (8443 proxy, 9000 chat room, 9090 admin): "
                    + e.getMessage());
        }
    }

    private String dump() {
        final StringBuilder out = new StringBuilder();
        for (Path file : new Path[] {demoOut, demoErr, chromiumErr}) {
            if (file != null && Files.exists(file)) {
                try {
                    final List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
                    out.append("--- ").append(file.getFileName()).append(" (last 40 lines)\n");
                    lines.subList(Math.max(0, lines.size() - 40), lines.size())
                            .forEach(l -> out.append(l).append('\n'));
                } catch (IOException e) {
                    out.append("--- ")
                            .append(file.getFileName())
                            .append(": ")
                            .append(e)
                            .append('\n');
                }
            }
        }
        return out.toString();
    }

    private static String requiredProperty(String name) {
        final String value = System.getProperty(name);
        if (value == null || value.isBlank()) {
            fail("system property " + name + " is not set (failsafe sets it; see integration-tests/pom.xml)");
        }
        return value;
    }

    private static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    private static void copyTree(Path from, Path to) throws IOException {
        final List<Path> paths = new ArrayList<>();
        try (Stream<Path> walk = Files.walk(from)) {
            walk.forEach(paths::add);
        }
        for (Path source : paths) {
            final Path target = to.resolve(from.relativize(source).toString());
            if (Files.isDirectory(source)) {
                Files.createDirectories(target);
            } else {
                Files.copy(source, target, StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }
}
