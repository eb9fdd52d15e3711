/**
 * Text forms of IP addresses held as bytes, as the kernel hands them out in /proc.
 * IPv6 follows RFC 5952 (lower case, longest zero run compressed), the form Docker's API uses,
 * so addresses from both sources compare as strings.
 */

export function formatIPv4(b0: number, b1: number, b2: number, b3: number): string {
  return `${b0}.${b1}.${b2}.${b3}`;
}

/** Formats 16 bytes; an IPv4-mapped address (::ffff:a.b.c.d) comes out as plain IPv4. */
export function formatIPv6(bytes: ArrayLike<number>): string {
  let mapped = bytes[10] === 0xff && bytes[11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) if (bytes[i] !== 0) mapped = false;
  if (mapped) return formatIPv4(bytes[12]!, bytes[13]!, bytes[14]!, bytes[15]!);

  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);

  // Longest run of at least two zero groups; the first one wins a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.map((g) => g.toString(16)).join(':');
  const head = groups.slice(0, bestStart).map((g) => g.toString(16)).join(':');
  const tail = groups.slice(bestStart + bestLength).map((g) => g.toString(16)).join(':');
  return `${head}::${tail}`;
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}

export function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}
