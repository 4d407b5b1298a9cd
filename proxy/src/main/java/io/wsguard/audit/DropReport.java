package io.wsguard.audit;

/**
 * Lines a sink took and then lost, one run of them: what the audit line {@code audit_dropped}
 * says once the sink delivers again. Times and sequence numbers are the lost lines' own.
 *
 * @param lines how many
 * @param firstTs the {@code ts} of the first one lost
 * @param lastTs the {@code ts} of the last one lost
 * @param firstSeq the first one's integrity {@code seq}, or -1 without a chain
 * @param lastSeq the last one's, or -1
 * @param lastMac the last one's mac, from which the chain goes on; {@code null} without a chain
 * @param bufferFull how many were lost to a full buffer
 * @param oversized how many were lost for being larger than a message may be
 * @param why what kept the sink from delivering, e.g. {@code tcp://siem:514 unreachable}
 */
record DropReport(
        long lines,
        String firstTs,
        String lastTs,
        long firstSeq,
        long lastSeq,
        String lastMac,
        long bufferFull,
        long oversized,
        String why) {

    /** The {@code reason} label of lines lost with the buffer full. */
    static final String BUFFER_FULL = "buffer_full";
    /** The {@code reason} label of lines larger than the transport or the buffer takes. */
    static final String OVERSIZED = "oversized";

    /** The audit line's {@code detail}. */
    String detail() {
        final StringBuilder text = new StringBuilder()
                .append(lines)
                .append(lines == 1 ? " line" : " lines")
                .append(" dropped between ")
                .append(firstTs)
                .append(" and ")
                .append(lastTs);
        if (firstSeq >= 0) {
            text.append(" (seq ")
                    .append(firstSeq)
                    .append(" to ")
                    .append(lastSeq)
                    .append(')');
        }
        text.append(": ");
        if (bufferFull > 0) {
            text.append(bufferFull)
                    .append(" with the buffer full (")
                    .append(why)
                    .append(')');
        }
        if (oversized > 0) {
            text.append(bufferFull > 0 ? ", " : "").append(oversized).append(" too large to send");
        }
        if (lastMac != null) {
            text.append("; the chain goes on from mac ").append(lastMac);
        }
        return text.toString();
    }
}
