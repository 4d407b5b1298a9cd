# wsguard's container image (README.md, "Container and Kubernetes").
#
#   docker build -t wsguard:VERSION .
#   docker run --read-only --tmpfs /tmp -p 8443:8443 -p 9091:9091 \
#       -v "$PWD/wsguard:/etc/wsguard:ro" wsguard:VERSION
#
# Stage 1 builds the release tarball with Maven; stage 2 unpacks it into a JRE image, so the image runs
# the same bin/wsguard launcher, with the same JVM defaults, as an installation from the tarball.
#
# Paths the image documents (the Kubernetes manifests mount exactly these):
#   /etc/wsguard/policy.yaml   the policy (mount its directory, /etc/wsguard, rather than the file: a
#                              directory mount sees an editor's write-and-rename and a ConfigMap's
#                              symlink swap, and wsguard reloads the policy within a second)
#   /etc/wsguard/certs/        the listener's certificate and key, reloaded the same way
#   /tmp                       the only place the JVM may write: give it a tmpfs or an emptyDir when
#                              the root filesystem is read-only
ARG MAVEN_IMAGE=maven:3.9-eclipse-temurin-17
ARG JRE_IMAGE=eclipse-temurin:17-jre

FROM ${MAVEN_IMAGE} AS build
WORKDIR /src
COPY . .
# The tarball is proxy/target/wsguard-VERSION.tar.gz; only the modules it needs are built. .git is in
# the context (see .dockerignore) so that --version names the commit; without it, "unknown".
RUN --mount=type=cache,target=/root/.m2 mvn -B -ntp -pl proxy -am package -DskipTests \
 && mkdir /dist \
 && tar -xzf proxy/target/wsguard-*.tar.gz -C /dist \
 && mv /dist/wsguard-* /dist/wsguard

FROM ${JRE_IMAGE}
# A fixed, non-root uid and gid (10001), so that runAsUser, fsGroup and file ownership on volumes can
# name them. No home directory and no login shell: the proxy needs neither.
RUN groupadd --system --gid 10001 wsguard \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin wsguard \
 && mkdir -p /etc/wsguard/certs
COPY --from=build /dist/wsguard /opt/wsguard
# -XX:-UsePerfData: the JVM writes no hsperfdata file under /tmp (jstat cannot attach; jcmd still can),
# one less write on a read-only root filesystem. JAVA_OPTS reaches the JVM after the launcher's
# defaults (-XX:MaxRAMPercentage=50 and the rest): an operator who sets JAVA_OPTS keeps this flag in it.
ENV JAVA_OPTS="-XX:-UsePerfData" \
    PATH="/opt/wsguard/bin:${PATH}"
USER 10001:10001
WORKDIR /opt/wsguard
# 8443: the listener of deploy/kubernetes/policy.yaml. 9090: the admin port (on 127.0.0.1 in that
# policy: /admin/* and the dashboard, for kubectl port-forward or docker exec). 9091: admin.probes,
# /healthz, /readyz and /metrics for the kubelet and Prometheus.
EXPOSE 8443 9090 9091
# SIGTERM drains: readiness turns 503, new upgrades get 503, open connections get 1001, within
# proxy.drainTimeout. The launcher execs the JVM, so the signal reaches it directly.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/wsguard/bin/wsguard"]
CMD ["run", "--config", "/etc/wsguard/policy.yaml"]
