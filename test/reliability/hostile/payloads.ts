/**
 * Hostile values: addresses an attacker would point the server at (SSRF) in every spelling the
 * WHATWG URL parser and getaddrinfo accept, and chat markup that would mention, broadcast, link or
 * run script if a renderer passed it through.
 */

const PRIVATE = /is a private, loopback or link-local address, which this server does not connect to/;
const HTTPS_ONLY = /Only https:\/\/ URLs are allowed/;
const NO_CREDENTIALS = /must not contain a user name or password/;
const NOT_A_URL = /is not a valid URL/;

/** Admin-entered URLs that must be refused before any connection, with what the refusal says. */
export const HOSTILE_URLS: readonly { readonly url: string; readonly says: RegExp }[] = [
  // Loopback, in every spelling that parses to 127.0.0.0/8 or ::1.
  { url: 'https://127.0.0.1/', says: PRIVATE },
  { url: 'https://127.8.9.10:8443/jira', says: PRIVATE },
  { url: 'https://127.0.0.1./', says: PRIVATE },
  { url: 'https://127.1/', says: PRIVATE },
  { url: 'https://2130706433/', says: PRIVATE },
  { url: 'https://0x7f000001/', says: PRIVATE },
  { url: 'https://0x7f.0.0.1/', says: PRIVATE },
  { url: 'https://0177.0.0.1/', says: PRIVATE },
  { url: 'https://%31%32%37.0.0.1/', says: PRIVATE },
  { url: 'https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/', says: PRIVATE },
  { url: 'https://[::1]/', says: PRIVATE },
  { url: 'https://[0:0:0:0:0:0:0:1]/', says: PRIVATE },
  { url: 'https://[::ffff:127.0.0.1]/', says: PRIVATE },
  { url: 'https://[0:0:0:0:0:ffff:7f00:1]/', says: PRIVATE },
  { url: 'https://[64:ff9b::7f00:1]/', says: PRIVATE },
  { url: 'https://[2002:7f00:1::]/', says: PRIVATE },
  // Names that mean this machine or an internal network.
  { url: 'https://localhost/', says: PRIVATE },
  { url: 'https://LOCALHOST./', says: PRIVATE },
  { url: 'https://jira.localhost:8080/', says: PRIVATE },
  { url: 'https://metadata.google.internal/computeMetadata/v1/', says: PRIVATE },
  // Cloud metadata (link-local) in dotted, hex and IPv6-mapped form.
  { url: 'https://169.254.169.254/latest/meta-data/', says: PRIVATE },
  { url: 'https://0xa9fea9fe/', says: PRIVATE },
  { url: 'https://[::ffff:a9fe:a9fe]/', says: PRIVATE },
  { url: 'https://[fe80::1]/', says: PRIVATE },
  // Private, shared and unspecified ranges.
  { url: 'https://10.0.0.1/', says: PRIVATE },
  { url: 'https://172.16.0.1/', says: PRIVATE },
  { url: 'https://172.31.255.254/', says: PRIVATE },
  { url: 'https://192.168.1.1/', says: PRIVATE },
  { url: 'https://100.64.0.1/', says: PRIVATE },
  { url: 'https://0.0.0.0/', says: PRIVATE },
  { url: 'https://[::]/', says: PRIVATE },
  { url: 'https://[fd12:3456::1]/', says: PRIVATE },
  // Plain http, other schemes, credentials in the URL, not a URL.
  { url: 'http://jira.example.com/', says: HTTPS_ONLY },
  { url: 'http://8.8.8.8/', says: HTTPS_ONLY },
  { url: 'file:///etc/passwd', says: HTTPS_ONLY },
  { url: 'gopher://127.0.0.1:25/_HELO', says: HTTPS_ONLY },
  { url: 'javascript:alert(1)', says: HTTPS_ONLY },
  { url: 'https://admin:secret@jira.example.com/', says: NO_CREDENTIALS },
  { url: 'not a url', says: NOT_A_URL },
];

/** SMTP Host values that point at this machine, its metadata service or a private network. */
export const HOSTILE_SMTP_HOSTS: readonly string[] = [
  '127.0.0.1',
  'localhost',
  '169.254.169.254',
  '10.0.0.1',
  '192.168.1.1',
  '::1',
  '::ffff:127.0.0.1',
  '2130706433',
  '0x7f000001',
];

/**
 * Slack mrkdwn control (broadcasts, user/channel/group mentions, a labelled link), formatting,
 * HTML, and a markdown link for Teams. Fits the smallest text field (region, 100 characters).
 */
export const MARKUP_SHORT = '<!here> <@U0ADMIN> <https://evil.example|x> <script>1</script> *b*';

/** The same and more, for the longer fields (account and category take 200 characters). */
export const MARKUP =
  '<!channel> <!here> <!everyone> <@U0ADMIN> <#C0GENERAL> <!subteam^S0OPS> <https://evil.example|click> ' +
  '[click](https://evil.example) *b* _i_ `c` &amp; & <script>alert(1)</script> <img src=x onerror=1>';

/** Raw sequences that must not reach a chat message as markup. */
export const RAW_CONTROL = [
  '<!channel>',
  '<!here>',
  '<!everyone>',
  '<@U0ADMIN>',
  '<#C0GENERAL>',
  '<!subteam^',
  '<https://evil.example',
  '<script>',
  '<img ',
] as const;
