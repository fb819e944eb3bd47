import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

@Entity({ name: 'users' })
export class User {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  /** Stored normalised (trimmed, lower-case); unique. */
  @Column({ type: 'text' })
  email!: string;

  /** Unique case-insensitively (index on lower(username)). */
  @Column({ type: 'text' })
  username!: string;

  /** argon2id PHC string; never selected by default, never returned, logged or published. */
  @Column({ name: 'password_hash', type: 'text', select: false })
  passwordHash!: string;

  /** `user`, or `admin` (granted by `npm run users -- grant-admin <email>`). */
  @Column({ type: 'text', default: 'user' })
  role!: 'user' | 'admin';

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
