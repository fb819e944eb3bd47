import { Body, Controller, Get, Header, HttpCode, Param, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import { AccountResponse, PublicUserResponse, RegisterUserBody, UserIdParam, UserResponse } from './users.schemas';
import { UsersService } from './users.service';
import { CorrelationId } from '@app/runtime';
import { Authenticated, CurrentUser, Identity } from '@app/auth';

/** Answers about people are never stored by browsers or shared caches (Cache-Control: no-store on each route). */
@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Post()
  @HttpCode(201)
  @Header('Cache-Control', 'no-store')
  async register(
    @Body({ schema: RegisterUserBody }) body: RegisterUserBody,
    @CorrelationId() correlationId: string,
    @Res({ passthrough: true }) response: Response,
  ): Promise<UserResponse> {
    const user = await this.users.register(body, correlationId);
    response.setHeader('Location', `/users/${user.id}`);
    return user;
  }

  /** The signed-in user's own account, with the email address and the role. */
  @Get('me')
  @Header('Cache-Control', 'no-store')
  @Authenticated()
  me(@CurrentUser() identity: Identity): Promise<AccountResponse> {
    return this.users.findOwn(identity.userId);
  }

  @Get(':id')
  @Header('Cache-Control', 'no-store')
  findOne(@Param('id', { schema: UserIdParam }) id: string): Promise<PublicUserResponse> {
    return this.users.findById(id);
  }
}
