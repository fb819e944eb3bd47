/** The PostgreSQL schema video-processor owns (its job claims). */
export const SCHEMA = 'video_processor';
