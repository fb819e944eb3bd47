import { accessSync, constants } from 'node:fs';
import { z } from 'zod';

/**
 * Cross-field rules every Kafka-using app applies: SASL needs both credentials, SASL and TLS files need TLS on and
 * must be readable, and min.insync.replicas cannot exceed the replication factor (every write would be refused).
 */
export function checkKafka(
  cfg: {
    KAFKA_SSL?: boolean;
    KAFKA_SSL_CA_FILE?: string;
    KAFKA_SSL_CERT_FILE?: string;
    KAFKA_SSL_KEY_FILE?: string;
    KAFKA_SASL_MECHANISM?: string;
    KAFKA_SASL_USERNAME?: string;
    KAFKA_SASL_PASSWORD?: string;
    KAFKA_REPLICATION_FACTOR?: number;
    KAFKA_MIN_INSYNC_REPLICAS?: number;
  },
  ctx: z.RefinementCtx,
): void {
  if (cfg.KAFKA_SASL_MECHANISM && (!cfg.KAFKA_SASL_USERNAME || !cfg.KAFKA_SASL_PASSWORD)) {
    ctx.addIssue({
      code: 'custom',
      path: ['KAFKA_SASL_USERNAME'],
      message: 'KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required when KAFKA_SASL_MECHANISM is set',
    });
  }
  for (const name of ['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE'] as const) {
    const file = cfg[name];
    if (file === undefined) continue;
    if (!cfg.KAFKA_SSL) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'needs KAFKA_SSL=true' });
    } else if (!readable(file)) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'cannot be read' });
    }
  }
  if (Boolean(cfg.KAFKA_SSL_CERT_FILE) !== Boolean(cfg.KAFKA_SSL_KEY_FILE)) {
    ctx.addIssue({
      code: 'custom',
      path: ['KAFKA_SSL_CERT_FILE'],
      message: 'KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (a client certificate and its key)',
    });
  }
  if (
    cfg.KAFKA_MIN_INSYNC_REPLICAS !== undefined &&
    cfg.KAFKA_REPLICATION_FACTOR !== undefined &&
    cfg.KAFKA_MIN_INSYNC_REPLICAS > cfg.KAFKA_REPLICATION_FACTOR
  ) {
    ctx.addIssue({
      code: 'custom',
      path: ['KAFKA_MIN_INSYNC_REPLICAS'],
      message: `must not exceed KAFKA_REPLICATION_FACTOR (${cfg.KAFKA_REPLICATION_FACTOR}): no write could be acknowledged`,
    });
  }
}

function readable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}
