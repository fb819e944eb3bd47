import { Body, Controller, Get, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import { RegisterUserBody, UserIdParam, UserResponse } from './users.schemas';
import { UsersService } from './users.service';
import { CORRELATION_HEADER, correlationIdOf } from '../common/correlation';

@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Post()
  @HttpCode(201)
  async register(
    @Body({ schema: RegisterUserBody }) body: RegisterUserBody,
    @Headers(CORRELATION_HEADER) correlationHeader: string | undefined,
    @Res({ passthrough: true }) response: Response,
  ): Promise<UserResponse> {
    const correlationId = correlationIdOf(correlationHeader);
    const user = await this.users.register(body, correlationId);
    response.setHeader('Location', `/users/${user.id}`);
    response.setHeader(CORRELATION_HEADER, correlationId);
    return user;
  }

  @Get(':id')
  findOne(@Param('id', { schema: UserIdParam }) id: string): Promise<UserResponse> {
    return this.users.findById(id);
  }
}
