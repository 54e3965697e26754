import { bounded, MAX_NAME_CHARS } from './bounded';

/**
 * A strict, small XML reader and writer for the provider payloads we exchange (Ap21 Retail API,
 * EPG responses). It refuses what hostile XML needs: DOCTYPE and entity declarations, unknown
 * entities, processing instructions other than the XML declaration, deep nesting and documents
 * larger than a byte limit. Namespaces are kept as part of element names; nothing is fetched or
 * expanded, so a document's tree is never larger than its text. Names quoted in errors are cut.
 */
export interface XmlElement {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  /** The element's own text (CDATA included), outside its children, untrimmed. */
  readonly text: string;
}

export class XmlError extends Error {
  override readonly name = 'XmlError';
}

export interface XmlLimits {
  readonly maxDepth: number;
  /** UTF-8 bytes of the whole document. */
  readonly maxBytes: number;
  /**
   * Elements at most. Not a default: real Ap21 pages (50 orders of full documents) pass 20,000
   * elements, and the byte limit already bounds the tree. Kept for callers whose documents are small
   * by contract.
   */
  readonly maxElements?: number;
}

/** Provider answers are read up to 2 MiB (providers/outbound.ts): the same bound here. */
export const DEFAULT_XML_LIMITS: XmlLimits = { maxDepth: 32, maxBytes: 2 * 1024 * 1024 };
const NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*/;
const ATTRIBUTE = /^\s+([A-Za-z_][A-Za-z0-9_.:-]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/;
const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&([^;&\s]{0,10});?/g, (whole, entity: string) => {
    if (!whole.endsWith(';')) throw new XmlError('bare & in text');
    const named = NAMED_ENTITIES[entity];
    if (named) return named;
    const numeric = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(entity);
    const code = numeric ? parseInt(numeric[1] ?? numeric[2]!, numeric[1] ? 16 : 10) : NaN;
    const allowed =
      code === 0x9 ||
      code === 0xa ||
      code === 0xd ||
      (code >= 0x20 && code <= 0xd7ff) ||
      (code >= 0xe000 && code <= 0x10ffff && code !== 0xfffe && code !== 0xffff);
    if (!allowed) throw new XmlError(`unknown or invalid entity &${entity};`);
    return String.fromCodePoint(code);
  });
}

/** An element or attribute name as an error message may quote it: cut, since the document chose it. */
export function quoted(name: string): string {
  return bounded(name, MAX_NAME_CHARS);
}

interface Building {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** Parses one XML document into its root element, or throws XmlError saying why not. */
export function parseXml(source: string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlElement {
  // UTF-16 length is a lower bound of the UTF-8 size: measure exactly only when it could fit.
  if (source.length > limits.maxBytes || Buffer.byteLength(source, 'utf8') > limits.maxBytes) {
    throw new XmlError(`document larger than ${limits.maxBytes} bytes`);
  }
  const maxElements = limits.maxElements ?? Number.POSITIVE_INFINITY;
  let input = source.startsWith('\uFEFF') ? source.slice(1) : source;
  const declaration = /^<\?xml(\s[^?]*)?\?>/.exec(input);
  if (declaration) input = input.slice(declaration[0].length);
  const stack: Building[] = [];
  let root: XmlElement | undefined;
  let elements = 0;
  let i = 0;
  while (i < input.length) {
    const lt = input.indexOf('<', i);
    const text = input.slice(i, lt === -1 ? input.length : lt);
    if (text) {
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(text);
      else if (text.trim()) throw new XmlError('text outside the root element');
    }
    if (lt === -1) break;
    const rest = input.slice(lt, lt + 12);
    if (rest.startsWith('<!--')) {
      const end = input.indexOf('-->', lt + 4);
      if (end === -1) throw new XmlError('unterminated comment');
      i = end + 3;
    } else if (rest.startsWith('<![CDATA[')) {
      const end = input.indexOf(']]>', lt + 9);
      const top = stack[stack.length - 1];
      if (end === -1 || !top) throw new XmlError('CDATA outside an element or unterminated');
      top.text += input.slice(lt + 9, end);
      i = end + 3;
    } else if (rest.startsWith('<!') || rest.startsWith('<?')) {
      throw new XmlError('DOCTYPE, entity declarations and processing instructions are not accepted');
    } else if (rest.startsWith('</')) {
      const name = NAME.exec(input.slice(lt + 2))?.[0];
      const close = input.indexOf('>', lt);
      const top = stack.pop();
      if (!name || close === -1 || input.slice(lt + 2 + name.length, close).trim() || !top || top.name !== name) {
        throw new XmlError(`unexpected closing tag ${quoted(name ?? '')}`);
      }
      const element: XmlElement = top;
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(element);
      else root = element;
      i = close + 1;
    } else {
      if (root) throw new XmlError('more than one root element');
      const name = NAME.exec(input.slice(lt + 1))?.[0];
      if (!name) throw new XmlError('malformed tag');
      let j = lt + 1 + name.length;
      const attributes: Record<string, string> = {};
      for (let match = ATTRIBUTE.exec(input.slice(j, j + 4096)); match; match = ATTRIBUTE.exec(input.slice(j, j + 4096))) {
        const [whole, attribute = '', double, single] = match;
        if (attribute in attributes) throw new XmlError(`duplicate attribute ${quoted(attribute)}`);
        attributes[attribute] = decodeEntities(double ?? single ?? '');
        j += whole.length;
      }
      const tagEnd = /^\s*(\/?)>/.exec(input.slice(j, j + 256));
      if (!tagEnd) throw new XmlError(`malformed tag ${quoted(name)}`);
      if (++elements > maxElements) throw new XmlError(`more than ${maxElements} elements`);
      if (stack.length + 1 > limits.maxDepth) throw new XmlError(`nested deeper than ${limits.maxDepth}`);
      const element: Building = { name, attributes, children: [], text: '' };
      if (tagEnd[1]) {
        const parent = stack[stack.length - 1];
        if (parent) parent.children.push(element);
        else root = element;
      } else {
        stack.push(element);
      }
      i = j + tagEnd[0].length;
    }
  }
  if (stack.length || !root) throw new XmlError(stack.length ? `unclosed element ${quoted(stack[stack.length - 1]!.name)}` : 'no root element');
  return root;
}

export function childElement(parent: XmlElement, name: string): XmlElement | undefined {
  return parent.children.find((child) => child.name === name);
}

export function childElements(parent: XmlElement, name: string): XmlElement[] {
  return parent.children.filter((child) => child.name === name);
}

/** Trimmed text of a direct child, or undefined when absent. */
export function childText(parent: XmlElement, name: string): string | undefined {
  return childElement(parent, name)?.text.trim();
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (char) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' }[char]};`);
}

/** A value to write: text, a list of same-named children, or nested elements. */
export type XmlValue = string | number | boolean | null | undefined | XmlValue[] | { readonly [name: string]: XmlValue };

/** Writes `<name>…</name>`; undefined and null values are left out, arrays repeat the tag. */
export function toXml(name: string, value: XmlValue): string {
  if (!NAME.test(name) || NAME.exec(name)?.[0] !== name) throw new XmlError(`invalid element name ${quoted(name)}`);
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.map((item) => toXml(name, item)).join('');
  if (typeof value === 'object')
    return `<${name}>${Object.entries(value)
      .map(([child, inner]) => toXml(child, inner))
      .join('')}</${name}>`;
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

/**
 * An element written back as XML in one canonical form (attributes as read, the element's own text
 * before its children, empty elements self-closed), leaving out direct children named in `omit`.
 * Two readings of the same content give the same text: what a fingerprint of a document hashes.
 */
export function canonicalXml(element: XmlElement, omit: readonly string[] = []): string {
  const attributes = Object.entries(element.attributes)
    .map(([name, value]) => ` ${name}="${escapeXml(value)}"`)
    .join('');
  const children = element.children
    .filter((child) => !omit.includes(child.name))
    .map((child) => canonicalXml(child))
    .join('');
  const text = element.text.trim();
  return text || children ? `<${element.name}${attributes}>${escapeXml(text)}${children}</${element.name}>` : `<${element.name}${attributes}/>`;
}
