// Broker restarts and replays take longer than Jest's 5 s default; each wait inside a test has its own bound.
jest.setTimeout(180_000);
