/** Test helpers for subscriptions. */

/** The next `n` items of an async iterator (fewer if it ends first). */
export async function take(sub, n) {
  const out = [];
  while (out.length < n) {
    const r = await sub.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}
