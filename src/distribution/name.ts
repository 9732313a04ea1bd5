// The repository-name grammar of the distribution spec ("Pulling manifests": `<name>`;
// docs/protocol.md §5): path components of lowercase alphanumerics joined by `.`, `_`, `__` or
// dashes, separated by `/`, at most 255 characters. Every name that later becomes part of
// an upstream URL or a log field passes through here first, so nothing else needs to escape.
import { RegistryError } from '../errors/registry.js';

const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const MAX_NAME_LENGTH = 255;

export function isRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

/** The name as it is, or NAME_INVALID (400) with the start of it as detail. */
export function validateName(name: string): string {
  if (!isRepositoryName(name)) throw new RegistryError('NAME_INVALID', { detail: { name: name.slice(0, 300) } });
  return name;
}
