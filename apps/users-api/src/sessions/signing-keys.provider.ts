import { FactoryProvider, Logger } from '@nestjs/common';
import { APP_CONFIG, UsersApiConfig } from '@app/config';
import { SigningKeys, TokenVerifier } from '@app/auth';

/** users-api's signing keys: from AUTH_SIGNING_KEYS, or made at boot outside production (with a warning). */
export const SIGNING_KEYS = Symbol('SIGNING_KEYS');

export const signingKeysProvider: FactoryProvider<Promise<SigningKeys>> = {
  provide: SIGNING_KEYS,
  inject: [APP_CONFIG],
  useFactory: async (config: UsersApiConfig) => {
    if (config.AUTH_SIGNING_KEYS) return SigningKeys.fromJwks(config.AUTH_SIGNING_KEYS.keys);
    const keys = await SigningKeys.generate();
    new Logger('Sessions').warn(
      `AUTH_SIGNING_KEYS is unset: signing with key ${keys.kid}, made at boot; its tokens die with this process ` +
        'and other replicas do not accept them (set AUTH_SIGNING_KEYS: npm run auth:keys)',
    );
    return keys;
  },
};

/** users-api verifies the tokens it signs against its own keys: no request to itself. */
export const localVerifier = {
  inject: [SIGNING_KEYS, APP_CONFIG],
  useFactory: (keys: SigningKeys, config: UsersApiConfig) => TokenVerifier.local(keys.jwks, config.AUTH_ISSUER),
};
