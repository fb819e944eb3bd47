import { Body, Controller, Get, HttpCode, Param, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import { RegisterUserBody, UserIdParam, UserResponse } from './users.schemas';
import { UsersService } from './users.service';
import { CorrelationId } from '@app/runtime';

@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Post()
  @HttpCode(201)
  async register(
    @Body({ schema: RegisterUserBody }) body: RegisterUserBody,
    @CorrelationId() correlationId: string,
    @Res({ passthrough: true }) response: Response,
  ): Promise<UserResponse> {
    const user = await this.users.register(body, correlationId);
    response.setHeader('Location', `/users/${user.id}`);
    return user;
  }

  @Get(':id')
  findOne(@Param('id', { schema: UserIdParam }) id: string): Promise<UserResponse> {
    return this.users.findById(id);
  }
}
