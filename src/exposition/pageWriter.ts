/** Text gathered before it is copied into the page: few copies, and little text alive at once. */
const CHUNK_CHARS = 16 * 1024;

/**
 * A page of the text exposition as UTF-8 bytes, written as it is made. The page as one string
 * (3,200 series, 480 KB at N=100) outlived the young generation's collections while it was
 * built, was copied into the old one, and was encoded once more to be sent; bytes outside the
 * heap are neither (docs/performance.md, "Link health").
 */
export class PageWriter {
  #buffer: Buffer;
  #length = 0;
  #pending = '';

  /** `capacity`: the bytes expected (the last page's size); the page grows past it when needed. */
  constructor(capacity = 64 * 1024) {
    this.#buffer = Buffer.allocUnsafe(Math.max(1024, capacity));
  }

  write(text: string): void {
    this.#pending += text;
    if (this.#pending.length >= CHUNK_CHARS) this.#flush();
  }

  /** The page written so far; the writer is not to be written to after. */
  bytes(): Buffer {
    this.#flush();
    return this.#buffer.subarray(0, this.#length);
  }

  #flush(): void {
    const text = this.#pending;
    this.#pending = '';
    // UTF-8 takes at most 3 bytes for each UTF-16 unit.
    const needed = this.#length + text.length * 3;
    if (needed > this.#buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.#buffer.length * 2));
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    this.#length += this.#buffer.write(text, this.#length);
  }
}
