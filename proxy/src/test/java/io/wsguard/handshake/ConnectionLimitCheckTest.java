package io.wsguard.handshake;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.auth.Principal;
import io.wsguard.check.Mode;
import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.limit.ConnectionCounter;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * The caps and their leases, without a server: the check reads only the client's IP and the
 * subject, so the request wraps no Jetty request here. End to end: {@code server.HandshakeLimitsTest}.
 */
class ConnectionLimitCheckTest {

    private final ConnectionCounter perIp = new ConnectionCounter();
    private final ConnectionCounter perSubject = new ConnectionCounter();
    private final ConnectionLimitCheck check = new ConnectionLimitCheck(perIp, 3, perSubject, 2);

    private static HandshakeRequest request(String ip, String subject) {
        final HandshakeRequest request = new HandshakeRequest(null, ip, "c1");
        if (subject != null) {
            request.authenticate(new Principal(subject, Map.of("sub", subject), Optional.empty()), "a token");
        }
        return request;
    }

    private Verdict run(HandshakeRequest request) {
        return check.check(request).toCompletableFuture().join();
    }

    @Test
    void perSubjectCapDeniesAndGivesBackThePerIpSlotItTook() {
        final HandshakeRequest a = request("10.0.0.1", "alice");
        final HandshakeRequest b = request("10.0.0.2", "alice");
        assertThat(run(a)).isEqualTo(Verdict.ALLOW);
        assertThat(run(b)).isEqualTo(Verdict.ALLOW);
        final HandshakeRequest c = request("10.0.0.3", "alice");
        assertThat(run(c)).isInstanceOfSatisfying(Verdict.Deny.class, deny -> {
            assertThat(deny.reason()).isEqualTo(Reason.CONNECTION_LIMIT);
            assertThat(deny.detail()).contains("perSubject of 2");
        });
        assertThat(perIp.count("10.0.0.3")).isZero();
        // The denied request holds no lease: releasing it changes nothing.
        c.releaseLeases();
        assertThat(perSubject.count("alice")).isEqualTo(2);
        assertThat(perIp.count("10.0.0.1")).isEqualTo(1);

        // A connection that ends gives back both slots, once, however often it is released.
        a.releaseLeases();
        a.releaseLeases();
        assertThat(perSubject.count("alice")).isEqualTo(1);
        assertThat(perIp.count("10.0.0.1")).isZero();
        assertThat(run(request("10.0.0.3", "alice"))).isEqualTo(Verdict.ALLOW);
    }

    @Test
    void perIpCapDeniesBeforeTouchingTheSubject() {
        for (int i = 0; i < 3; i++) {
            assertThat(run(request("2001:db8::" + (i + 1), "u" + i))).isEqualTo(Verdict.ALLOW);
        }
        // Another address in the same /64 is the same client.
        assertThat(run(request("2001:db8::ff", "bob")))
                .isInstanceOfSatisfying(
                        Verdict.Deny.class, deny -> assertThat(deny.detail()).contains("perIp of 3"));
        assertThat(perSubject.count("bob")).isZero();
        assertThat(run(request("2001:db8:0:1::1", "bob"))).isEqualTo(Verdict.ALLOW);
    }

    @Test
    void aLaterDenyInTheChainLeavesTheSlotAsALeaseForTheHandlerToGiveBack() {
        // What UpgradeHandler does with any enforced deny: release the request's leases.
        final HandshakeChain chain = new HandshakeChain(
                List.of(check, r -> HandshakeCheck.deny(Reason.CLAIM_DENIED, "a later check")), Mode.ENFORCE);
        final HandshakeRequest request = request("10.0.0.5", "carol");
        final Verdict verdict =
                chain.run(request, (deny, mode) -> {}).toCompletableFuture().join();
        assertThat(verdict).isInstanceOf(Verdict.Deny.class);
        assertThat(perIp.count("10.0.0.5")).isEqualTo(1);
        request.releaseLeases();
        assertThat(perIp.count("10.0.0.5")).isZero();
        assertThat(perSubject.count("carol")).isZero();
    }

    @Test
    void aMonitoredDenyHoldsNoSlot() {
        final ConnectionLimitCheck oneEach = new ConnectionLimitCheck(perIp, 1, perSubject, 0);
        final HandshakeChain chain = new HandshakeChain(List.of(oneEach), Mode.MONITOR);
        final HandshakeRequest first = request("10.0.0.6", null);
        final HandshakeRequest second = request("10.0.0.6", null);
        final List<Reason> monitored = new java.util.ArrayList<>();
        assertThat(chain.run(first, (deny, mode) -> monitored.add(deny.reason()))
                        .toCompletableFuture()
                        .join())
                .isEqualTo(Verdict.ALLOW);
        assertThat(chain.run(second, (deny, mode) -> monitored.add(deny.reason()))
                        .toCompletableFuture()
                        .join())
                .isEqualTo(Verdict.ALLOW);
        assertThat(monitored).containsExactly(Reason.CONNECTION_LIMIT);
        assertThat(perIp.count("10.0.0.6")).isEqualTo(1);
        second.releaseLeases();
        assertThat(perIp.count("10.0.0.6")).isEqualTo(1);
        first.releaseLeases();
        assertThat(perIp.count("10.0.0.6")).isZero();
    }

    @Test
    void withoutASubjectOnlyThePerIpCapApplies() {
        final HandshakeRequest anonymous = request("10.0.0.9", null);
        assertThat(run(anonymous)).isEqualTo(Verdict.ALLOW);
        assertThat(perSubject.keys()).isZero();
        anonymous.releaseLeases();
        assertThat(perIp.keys()).isZero();
    }
}
