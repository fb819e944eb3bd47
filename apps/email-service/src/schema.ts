/** The PostgreSQL schema email-service owns. */
export const SCHEMA = 'email_service';
