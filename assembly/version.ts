/** The bundle's version, logged once per VM at start; tests/unit/version.test.ts keeps it equal to package.json's. */
export const BUNDLE_VERSION = "0.1.0";
