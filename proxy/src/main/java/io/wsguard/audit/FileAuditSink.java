package io.wsguard.audit;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * {@code audit.sink: file}: appends to {@code audit.path}, rotating before a line would take the
 * file past {@code maxFileSize}: {@code audit.jsonl} becomes {@code audit.jsonl.1}, {@code .1}
 * becomes {@code .2}, … up to {@code .maxFiles}; the oldest is dropped. Renames are atomic where
 * the file system allows, and a line is never split across files. After a failure the stream is
 * dropped and reopened on the next write, so the log recovers when the disk does.
 */
final class FileAuditSink implements LineSink {

    private final Path path;
    private static final boolean POSIX =
            FileSystems.getDefault().supportedFileAttributeViews().contains("posix");

    private final long maxFileSize;
    private final int maxFiles;
    private final String lastLine;
    private OutputStream out;
    private long size;

    FileAuditSink(Path path, long maxFileSize, int maxFiles) throws IOException {
        this.path = path.toAbsolutePath();
        this.maxFileSize = maxFileSize;
        this.maxFiles = maxFiles;
        final Path parent = this.path.getParent();
        if (parent != null && !Files.isDirectory(parent)) {
            if (POSIX) {
                Files.createDirectories(
                        parent, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            } else {
                Files.createDirectories(parent);
            }
        }
        String last = completeLastLine(this.path);
        if (last == null) {
            // A crash between a rotation and the next write leaves the current file empty.
            last = completeLastLine(rotated(1));
        }
        lastLine = last;
        open();
    }

    @Override
    public String lastLine() {
        return lastLine;
    }

    @Override
    public void write(String line) throws IOException {
        final byte[] bytes = (line + '\n').getBytes(StandardCharsets.UTF_8);
        if (out == null) {
            open();
        }
        try {
            if (size > 0 && size + bytes.length > maxFileSize) {
                rotate();
            }
            out.write(bytes);
            size += bytes.length;
        } catch (IOException e) {
            drop();
            throw e;
        }
    }

    @Override
    public void flush() throws IOException {
        if (out == null) {
            return;
        }
        try {
            out.flush();
        } catch (IOException e) {
            drop();
            throw e;
        }
    }

    @Override
    public void close() throws IOException {
        if (out != null) {
            try {
                out.close();
            } finally {
                out = null;
            }
        }
    }

    Path rotated(int n) {
        return path.resolveSibling(path.getFileName() + "." + n);
    }

    private void open() throws IOException {
        final boolean existed = Files.exists(path);
        if (!existed && POSIX) {
            // Client IPs, subjects and payload samples: for the operator, not for every local user
            // (the process umask usually leaves new files world-readable). An existing file keeps
            // whatever mode the operator gave it.
            try {
                Files.createFile(
                        path, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            } catch (FileAlreadyExistsException raced) {
                // Created meanwhile: append to it as it is.
            }
        }
        size = existed ? Files.size(path) : 0;
        out = new BufferedOutputStream(
                Files.newOutputStream(path, StandardOpenOption.CREATE, StandardOpenOption.APPEND), 64 * 1024);
        if (size > 0 && !endsWithNewline(path)) {
            // A crash cut the last line short: end it, so our lines stay whole (verify flags it).
            out.write('\n');
            size++;
        }
    }

    private void rotate() throws IOException {
        out.close();
        out = null;
        if (maxFiles <= 0) {
            Files.delete(path);
        } else {
            Files.deleteIfExists(rotated(maxFiles));
            for (int n = maxFiles - 1; n >= 1; n--) {
                if (Files.exists(rotated(n))) {
                    move(rotated(n), rotated(n + 1));
                }
            }
            move(path, rotated(1));
        }
        open();
    }

    private void drop() {
        final OutputStream broken = out;
        out = null;
        if (broken != null) {
            try {
                broken.close();
            } catch (IOException ignored) {
                // Already failing; the caller reports the first error.
            }
        }
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static boolean endsWithNewline(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            if (ch.size() == 0) {
                return true;
            }
            final ByteBuffer one = ByteBuffer.allocate(1);
            ch.read(one, ch.size() - 1);
            return one.get(0) == '\n';
        }
    }

    /** The last newline-terminated line of {@code file}, or {@code null}; reads only its tail. */
    static String completeLastLine(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            return null;
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long end = ch.size();
            // Skip a partial last line (no newline): it is not a line we can chain from.
            long chunkStart;
            byte[] tail = new byte[0];
            int chunk = 8192;
            while (true) {
                chunkStart = Math.max(0, end - chunk);
                final ByteBuffer buf = ByteBuffer.allocate((int) (end - chunkStart));
                while (buf.hasRemaining() && ch.read(buf, chunkStart + buf.position()) > 0) {
                    // read until full
                }
                final byte[] joined = new byte[buf.capacity() + tail.length];
                System.arraycopy(buf.array(), 0, joined, 0, buf.capacity());
                System.arraycopy(tail, 0, joined, buf.capacity(), tail.length);
                tail = joined;
                final String line = lastTerminated(tail, chunkStart == 0);
                if (line != null || chunkStart == 0) {
                    return line;
                }
                end = chunkStart;
                if (tail.length > 16 * 1024 * 1024) {
                    return null; // no audit line is this long; give up rather than read the whole file
                }
            }
        }
    }

    /** The last line of {@code bytes} that ends with a newline, if its start is known to be inside. */
    private static String lastTerminated(byte[] bytes, boolean atFileStart) {
        int nl = bytes.length - 1;
        while (nl >= 0 && bytes[nl] != '\n') {
            nl--;
        }
        if (nl < 0) {
            return null;
        }
        int start = nl - 1;
        while (start >= 0 && bytes[start] != '\n') {
            start--;
        }
        if (start < 0 && !atFileStart) {
            return null; // the line may begin before this chunk
        }
        final String line = new String(bytes, start + 1, nl - start - 1, StandardCharsets.UTF_8);
        return line.isEmpty() ? null : line;
    }
}
