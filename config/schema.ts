import { z } from 'zod';

/** Registry hosts settings shared by build, pull and push (docker's daemon.json names). */

/** The tsbuild config file (build, pull, push). Sections are added by the modules that own them. */
export const tsbuildConfigSchema = z
  .object({
    root: z.string().optional(),
    'registry-mirrors': z.array(z.string().url()).default([]),
    'insecure-registries': z.array(z.string()).default([]),
  })
  .strict();

export type TsbuildConfig = z.infer<typeof tsbuildConfigSchema>;
