// Runs before each integration test file (setupFilesAfterEnv). jest 29 only honours testTimeout
// as a global option, so the integration project's generous timeout is set here instead:
// real workers and servers take seconds, and unit tests keep jest's default 5 s.
jest.setTimeout(60_000);
