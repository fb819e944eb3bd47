import { DynamicModule, FactoryProvider, Module } from '@nestjs/common';
import { BearerAuthGuard, TOKEN_VERIFIER } from './bearer-auth.guard';
import { TokenVerifier } from './token-verifier';

/**
 * `@Authenticated()` routes in an app. Global: every controller of the app may use them. The verifier is remote
 * (users-api's JWKS URL) in every app but users-api, which verifies against the keys it signs with.
 */
@Module({})
export class AuthModule {
  static forRoot(
    verifier: Omit<FactoryProvider<TokenVerifier>, 'provide'>,
    imports: DynamicModule['imports'] = [],
  ): DynamicModule {
    return {
      module: AuthModule,
      global: true,
      imports,
      providers: [{ provide: TOKEN_VERIFIER, ...verifier }, BearerAuthGuard],
      exports: [TOKEN_VERIFIER, BearerAuthGuard],
    };
  }

  static remote(config: { AUTH_JWKS_URL: string; AUTH_ISSUER: string }): DynamicModule {
    return AuthModule.forRoot({ useFactory: () => TokenVerifier.remote(config.AUTH_JWKS_URL, config.AUTH_ISSUER) });
  }
}
