import { randomUUID } from 'node:crypto';
import { Body, Controller, Get, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import { RegisterUserBody, UserIdParam, UserResponse } from './users.schemas';
import { UsersService } from './users.service';

const CORRELATION_HEADER = 'x-correlation-id';
const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

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
    const correlationId =
      correlationHeader && CORRELATION_ID.test(correlationHeader) ? correlationHeader : randomUUID();
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
