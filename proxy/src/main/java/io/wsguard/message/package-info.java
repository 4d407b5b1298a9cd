/**
 * Checks on whole text messages, after the relay has reassembled a message (bounded by
 * {@code maxSize}), validated its UTF-8 and counted it against the rate limits: JSON and its schema,
 * deny rules, HTML sanitization ({@link io.wsguard.message.ContentRules}, compiled once per route
 * from {@code messages:} and shared by its connections). Each message gets a
 * {@link io.wsguard.check.Verdict}; the relay turns it into a close, a drop or a rewrite and the
 * audit line. Depends on {@code check} and {@code policy} only.
 */
package io.wsguard.message;
