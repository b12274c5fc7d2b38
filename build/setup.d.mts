// Types for build/setup.mjs, so the TypeScript harness can use the same Envoy resolution.
export declare const projectRoot: string;
export declare function pinnedEnvoyVersion(): string;
export declare function installedWheelVersion(): string | undefined;
export declare function resolveEnvoyBinary(): string;
export declare function envoyVersionLine(bin: string): string;
export declare function envoyBinaryVersion(bin: string): string;
