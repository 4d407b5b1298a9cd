/**
 * Token verification for the handshake: {@link io.wsguard.auth.JwtVerifier} turns a bearer token
 * into a {@link io.wsguard.auth.Principal} or a refusal reason, before wsguard dials the upstream.
 * {@link io.wsguard.auth.TokenMinter} makes test tokens for {@code wsguard token}.
 */
package io.wsguard.auth;
