package io.wsguard.admin;

/**
 * How far an operator's close or revocation reached: {@code POST /admin/connections/close}'s answer.
 *
 * @param closed connections closed on this instance (each other instance closes and audits its own)
 * @param scope {@value #CLUSTER}, or {@value #THIS_INSTANCE_ONLY}
 * @param subscribers how many subscribers Redis delivered the request to, this instance included;
 *     null when it was not sent
 * @param note what that means, in words
 */
public record Broadcast(int closed, String scope, Long subscribers, String note) {

    /** Sent to every instance through Redis. */
    public static final String CLUSTER = "cluster";
    /** Done here alone: no Redis store, or Redis unavailable. */
    public static final String THIS_INSTANCE_ONLY = "this instance only";

    /** Sent through Redis to {@code subscribers} subscribers. */
    public static Broadcast cluster(int closed, long subscribers, String channel) {
        return new Broadcast(
                closed,
                CLUSTER,
                subscribers,
                "sent to " + subscribers + " subscriber(s) of " + channel
                        + " (this instance included); each instance closes and audits its own connections");
    }

    /** Done on this instance alone, for the reason given. */
    public static Broadcast local(int closed, String why) {
        return new Broadcast(closed, THIS_INSTANCE_ONLY, null, why);
    }
}
