package io.wsguard;

import io.wsguard.cli.WsguardCommand;

/** Entry point: {@code java -jar wsguard.jar <command>}. Wires the commands, nothing else. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        System.exit(WsguardCommand.commandLine().execute(args));
    }
}
