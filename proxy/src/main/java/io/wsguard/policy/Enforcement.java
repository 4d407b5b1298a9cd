package io.wsguard.policy;

import java.util.Set;

/**
 * What this version of wsguard parses and validates but does not enforce yet. A policy that uses any
 * of it is refused: a security proxy that only pretends to check something is worse than one that
 * says it cannot (fail closed). Each issue that enforces a feature removes its entry here.
 */
final class Enforcement {

    /**
     * Generic YAML paths (list indices written {@code []}); {@code path=value} entries match only
     * that scalar value.
     */
    static final Set<String> NOT_ENFORCED = Set.of();

    static final String MESSAGE =
            "not enforced by this version of wsguard yet (remove it; wsguard refuses a policy it would only pretend to enforce)";

    private Enforcement() {}

    /** Whether {@code path} (with indices) holding {@code scalar} (null for maps and lists) is not enforced. */
    static boolean isNotEnforced(String path, String scalar) {
        final String generic = path.replaceAll("\\[\\d+]", "[]");
        return NOT_ENFORCED.contains(generic) || (scalar != null && NOT_ENFORCED.contains(generic + "=" + scalar));
    }

}
