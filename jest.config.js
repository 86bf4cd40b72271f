// Two projects: `unit` (pure logic, no servers) and `integration` (real redis-server, RabbitMQ and
// real Python Celery, started once per run by tests/setup/globalSetup.ts).
const base = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': 'ts-jest' },
};
module.exports = {
  // Integration files share one redis-server and spawn real workers, so they must run one at a
  // time. maxWorkers is a global option in jest 29 (not per project), so unit files are
  // serial too; they are fast.
  maxWorkers: 1,
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/tests/unit/**/*.test.ts'] },
    {
      ...base,
      displayName: 'integration',
      testMatch: ['<rootDir>/tests/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/tests/setup/globalSetup.ts',
      globalTeardown: '<rootDir>/tests/setup/globalTeardown.ts',
      // 60 s test timeout (jest 29 has no per-project testTimeout; see the file).
      setupFilesAfterEnv: ['<rootDir>/tests/setup/integrationEnv.ts'],
      slowTestThreshold: 15,
    },
  ],
};
