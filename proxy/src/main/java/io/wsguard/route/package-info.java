/**
 * The first step of a handshake: which route a request belongs to, from its Host and path. No match
 * is a 404 (README, Policy file), refused before anything else is looked at.
 */
package io.wsguard.route;
