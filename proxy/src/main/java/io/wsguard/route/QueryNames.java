package io.wsguard.route;

import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;

/**
 * Query parameter names as the frameworks behind wsguard may read them, so that a parameter wsguard
 * must keep from the upstream (a fixed one of the target's, a token) is found in every spelling that
 * one of them reads as that name.
 *
 * <p>Each name is read in every way found in use, and two names are the same when any readings meet:
 * <ul>
 *   <li>percent-decoded, with {@code +} as a space (forms) and as itself (RFC 3986), and decoded again
 *       up to three times: {@code rol%65}, {@code rol%2565};
 *   <li>case folded (ASP.NET's {@code Request.QueryString} ignores case; {@code ROLE}, and the long s
 *       and Kelvin sign that fold to ASCII letters);
 *   <li>without surrounding whitespace, and cut at a NUL;
 *   <li>cut at the first {@code [} or {@code .}: {@code role[]}, {@code role[0]} and {@code role.x} are
 *       {@code role} to PHP, Rack and Node's qs;
 *   <li>with PHP's renaming of {@code .} and space to {@code _} ({@code ro.le} is PHP's {@code ro_le}).
 * </ul>
 * A pair is split at {@code &} and again at {@code ;}, which older parsers (Python's before 3.9.2)
 * also take as a separator. A name without {@code =} ({@code ?role}) is a name: many frameworks read
 * it as the empty value. The readings are broad on purpose: a name no framework would confuse with
 * the protected one but that shares a reading only costs the client that one parameter.
 *
 * <p>Used on handshakes only, never per message.
 */
public final class QueryNames {

    /** Further decodings after the first: enough for double encoding, bounded for hostile input. */
    private static final int MAX_DECODINGS = 3;

    private QueryNames() {}

    /**
     * The readings of every parameter name in {@code rawQuery} (a target's fixed query, as written), or an empty set.
     */
    public static Set<String> ofQuery(String rawQuery) {
        final Set<String> readings = new HashSet<>();
        if (rawQuery != null) {
            for (String segment : rawQuery.split("[&;]", -1)) {
                addReadings(name(segment), readings);
            }
        }
        return Set.copyOf(readings);
    }

    /** The readings of each of {@code names} (raw or decoded: both read the same). */
    public static Set<String> ofNames(Iterable<String> names) {
        final Set<String> readings = new HashSet<>();
        for (String name : names) {
            addReadings(name, readings);
        }
        return Set.copyOf(readings);
    }

    /**
     * Whether a raw {@code &}-separated pair of a client's query names one of {@code readings} in
     * any reading, also in a {@code ;}-separated part of it.
     */
    public static boolean names(String rawPair, Set<String> readings) {
        if (readings.isEmpty() || rawPair.isEmpty()) {
            return false;
        }
        final Set<String> own = new HashSet<>();
        int start = 0;
        while (start <= rawPair.length()) {
            int end = rawPair.indexOf(';', start);
            if (end < 0) {
                end = rawPair.length();
            }
            addReadings(name(rawPair.substring(start, end)), own);
            start = end + 1;
        }
        for (String reading : own) {
            if (readings.contains(reading)) {
                return true;
            }
        }
        return false;
    }

    /** The name part of one {@code name=value} segment: up to the first {@code =}, or all of it. */
    private static String name(String segment) {
        final int eq = segment.indexOf('=');
        return eq < 0 ? segment : segment.substring(0, eq);
    }

    private static void addReadings(String raw, Set<String> out) {
        addDecodings(raw, true, out);
        addDecodings(raw, false, out);
    }

    /** {@code raw} decoded once, then again while it still holds escapes, each form normalised. */
    private static void addDecodings(String raw, boolean plusIsSpace, Set<String> out) {
        String text = raw;
        addForms(text, out);
        for (int i = 0; i <= MAX_DECODINGS; i++) {
            final String decoded = decode(text, plusIsSpace);
            if (decoded == null || decoded.equals(text)) {
                return;
            }
            text = decoded;
            addForms(text, out);
        }
    }

    private static void addForms(String decoded, Set<String> out) {
        String name = decoded;
        final int nul = name.indexOf('\0');
        if (nul >= 0) {
            name = name.substring(0, nul);
        }
        // Upper then lower: each alone misses letters the other folds (the long s, the Kelvin sign).
        name = name.strip().toUpperCase(Locale.ROOT).toLowerCase(Locale.ROOT);
        add(name, out);
        add(cut(name, '['), out);
        add(cut(name, '.'), out);
        add(cut(name.replace('.', '_').replace(' ', '_'), '['), out);
    }

    private static void add(String reading, Set<String> out) {
        if (!reading.isEmpty()) {
            out.add(reading);
        }
    }

    private static String cut(String name, char at) {
        final int index = name.indexOf(at);
        return index < 0 ? name : name.substring(0, index).strip();
    }

    /** One percent-decoding, or null when an escape is malformed (then no framework reads it as a name of ours). */
    private static String decode(String text, boolean plusIsSpace) {
        if (text.indexOf('%') < 0 && (!plusIsSpace || text.indexOf('+') < 0)) {
            return text;
        }
        try {
            return URLDecoder.decode(plusIsSpace ? text : text.replace("+", "%2B"), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException malformed) {
            return null;
        }
    }
}
