/** The PostgreSQL schema users-api owns. */
export const SCHEMA = 'users_api';
