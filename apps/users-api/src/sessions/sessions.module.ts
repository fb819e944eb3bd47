import { Module } from '@nestjs/common';
import { AuthModule } from '@app/auth';
import { RefreshTokens } from './refresh-tokens';
import { JwksController, SessionsController } from './sessions.controller';
import { SessionsService } from './sessions.service';
import { localVerifier, signingKeysProvider } from './signing-keys.provider';
import { SignInThrottle } from './sign-in-throttle';

/** The signing keys, made (or read) once for the whole app. */
@Module({ providers: [signingKeysProvider], exports: [signingKeysProvider] })
export class SigningKeysModule {}

/** Sign-in, the public keys, and the guard every `@Authenticated()` route of users-api uses. */
@Module({
  imports: [SigningKeysModule, AuthModule.forRoot(localVerifier, [SigningKeysModule])],
  controllers: [SessionsController, JwksController],
  providers: [SessionsService, RefreshTokens, SignInThrottle],
})
export class SessionsModule {}
