import { Body, Controller, Delete, Get, Header, HttpCode, Inject, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import type { JSONWebKeySet } from 'jose';
import { Authenticated, CurrentUser, Identity, SigningKeys } from '@app/auth';
import { RefreshBody, SessionResponse, SignInBody } from './sessions.schemas';
import { SessionsService } from './sessions.service';
import { SIGNING_KEYS } from './signing-keys.provider';

/** Sign-in, refresh and sign-out. Tokens are never stored by browsers or shared caches. */
@Controller('sessions')
export class SessionsController {
  constructor(private readonly sessions: SessionsService) {}

  /** `POST /sessions` `{ email, password }`: 201 with an access token and a refresh token. */
  @Post()
  @HttpCode(201)
  @Header('Cache-Control', 'no-store')
  signIn(@Body({ schema: SignInBody }) body: SignInBody, @Req() request: Request): Promise<SessionResponse> {
    return this.sessions.signIn(body, request.ip ?? 'unknown');
  }

  /** `POST /sessions/refresh` `{ refreshToken }`: the next pair; the token sent is used up. */
  @Post('refresh')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  refresh(@Body({ schema: RefreshBody }) body: RefreshBody): Promise<SessionResponse> {
    return this.sessions.refresh(body.refreshToken);
  }

  /** `DELETE /sessions`: signs out; the refresh tokens of this sign-in stop working. */
  @Delete()
  @HttpCode(204)
  @Authenticated()
  signOut(@CurrentUser() identity: Identity): Promise<void> {
    return this.sessions.signOut(identity);
  }
}

/** The public keys access tokens are verified with, for the other apps (and anyone). */
@Controller('.well-known')
export class JwksController {
  constructor(@Inject(SIGNING_KEYS) private readonly keys: SigningKeys) {}

  @Get('jwks.json')
  @Header('Cache-Control', 'public, max-age=300')
  jwks(): JSONWebKeySet {
    return this.keys.jwks;
  }
}
