/** A test-failing error raised by the emulator: the module did something Envoy would reject or a test misused the emulator. */
export class EmulatorError extends Error {
  override name = "EmulatorError";
}

/** Throws an EmulatorError when `ok` is false. */
export function check(ok: boolean, message: () => string): asserts ok {
  if (!ok) throw new EmulatorError(message());
}
