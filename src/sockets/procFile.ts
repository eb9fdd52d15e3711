import { open } from 'node:fs/promises';

/**
 * Reads a procfs file to EOF into a reusable buffer, growing it as needed. procfs files report
 * size 0 and a short read is not EOF, so it reads until read() returns 0. A large buffer keeps
 * the read() calls few: each one of /proc/net/tcp walks the kernel's TCP hash table again.
 */
export class ProcFileReader {
  #buffer: Buffer;

  constructor(initialSize = 256 * 1024) {
    this.#buffer = Buffer.allocUnsafe(initialSize);
  }

  /** Returns the buffer and the number of bytes read; valid until the next call. */
  async read(path: string): Promise<{ data: Buffer; length: number }> {
    const file = await open(path, 'r');
    try {
      let length = 0;
      for (;;) {
        if (length === this.#buffer.length) {
          const bigger = Buffer.allocUnsafe(this.#buffer.length * 2);
          this.#buffer.copy(bigger, 0, 0, length);
          this.#buffer = bigger;
        }
        const { bytesRead } = await file.read(this.#buffer, length, this.#buffer.length - length, null);
        if (bytesRead === 0) return { data: this.#buffer, length };
        length += bytesRead;
      }
    } finally {
      await file.close();
    }
  }
}
