/**
 * Host-free parts of the traffic-split filter, one idea per file: the sticky hash (hash.ts), the subset choice and
 * the request values it reads (choice.ts), the sliding window of per-subset outcomes (window.ts), the shared state and
 * its encoding (state.ts), the rollback / cool-down / ramp decisions (rollback.ts). Time is an argument.
 */
export * from "./hash";
export * from "./choice";
export * from "./window";
export * from "./state";
export * from "./rollback";
