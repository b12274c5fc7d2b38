export declare const MODULES: readonly string[];
export declare const VERSION: string;
export declare function modulePath(module: string): string;
export declare function schemaPath(module: string): string;
