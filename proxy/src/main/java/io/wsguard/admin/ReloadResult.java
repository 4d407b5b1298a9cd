package io.wsguard.admin;

import java.util.List;

/**
 * The outcome of {@link AdminActions#reload()}.
 *
 * @param applied whether the new policy is now in force
 * @param problems why it was refused, one line each, as {@code wsguard check} prints them
 *     ({@code FILE:LINE:COL: message}); empty when applied
 */
public record ReloadResult(boolean applied, List<String> problems) {

    public ReloadResult {
        problems = List.copyOf(problems);
    }

    /** The policy was applied. */
    public static ReloadResult ok() {
        return new ReloadResult(true, List.of());
    }

    /** The policy was refused for these problems; the old one stays. */
    public static ReloadResult rejected(List<String> problems) {
        return new ReloadResult(false, problems);
    }
}
