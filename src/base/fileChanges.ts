import { stat } from 'node:fs/promises';

/** What a file is now, by inode, size and mtime: an atomic rename or a rewrite in place both change it. */
async function stampOf(files: readonly string[]): Promise<string> {
  const stamps = await Promise.all(
    files.map((file) =>
      stat(file).then(
        (s) => `${s.ino}:${s.size}:${s.mtimeMs}`,
        () => 'missing',
      ),
    ),
  );
  return stamps.join('|');
}

/**
 * Calls `onChange` when one of `files()` changes, checked every `intervalMs` (polling works on
 * every file system and through bind mounts, where inotify may not). The list is asked for again
 * after each change: a reloaded configuration may name other files.
 */
export function watchFileChanges(options: { files: () => readonly string[]; onChange: () => Promise<void>; intervalMs?: number }): {
  stop(): void;
} {
  let lastStamp: string | undefined;
  let checking = false;
  const check = async () => {
    if (checking) return;
    checking = true;
    try {
      const stamp = await stampOf(options.files());
      const changed = lastStamp !== undefined && stamp !== lastStamp;
      lastStamp = stamp;
      if (!changed) return;
      await options.onChange();
      lastStamp = await stampOf(options.files());
    } finally {
      checking = false;
    }
  };
  void check();
  const timer = setInterval(() => void check(), options.intervalMs ?? 1_000);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
    },
  };
}
