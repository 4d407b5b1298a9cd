package io.wsguard.check;

/** The RFC 6455 §7.4.1 close codes wsguard sends (README, Policy file). */
public final class CloseCodes {
    public static final int NORMAL = 1000;
    public static final int SHUTDOWN = 1001;
    public static final int PROTOCOL_ERROR = 1002;
    public static final int UNSUPPORTED_DATA = 1003;
    public static final int NO_STATUS = 1005;
    public static final int ABNORMAL = 1006;
    public static final int INVALID_PAYLOAD = 1007;
    public static final int POLICY_VIOLATION = 1008;
    public static final int MESSAGE_TOO_BIG = 1009;
    public static final int SERVER_ERROR = 1011;
    /** 1014 "Bad Gateway" (IANA registry): the upstream failed mid-session. */
    public static final int BAD_GATEWAY = 1014;

    private CloseCodes() {}
}
