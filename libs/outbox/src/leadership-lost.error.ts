/** The relay's lock session ended or no longer answers: it must not publish another batch. */
export class LeadershipLostError extends Error {
  override readonly name = 'LeadershipLostError';
}
