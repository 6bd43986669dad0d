// The template language on its own: syntax errors located, strict vs lenient variables, escaping, the sandbox.
import type { TemplateParts, TemplateSettings } from '../../db/models/documents';
import { checkTemplate, renderTemplate, TEMPLATE_LIMITS, TemplateRenderError, TemplateSyntaxError } from '../../domains/documents/templates';
import { renderNotificationParts } from '../../domains/notifications/templates';

const parts = (over: Partial<TemplateParts> = {}): TemplateParts => ({ base: '', header: '', footer: '', css: '', partials: {}, ...over });
const settings = (variables: 'strict' | 'lenient'): TemplateSettings => ({ paperSize: 'A4', orientation: 'portrait', margins: { top: '1mm', right: '1mm', bottom: '1mm', left: '1mm' }, variables });

it('locates a syntax error by part, line and column', () => {
  expect.assertions(4);
  try {
    checkTemplate(parts({ footer: 'ok\nok\n   {% for x in y %}' }));
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateSyntaxError);
    expect((err as TemplateSyntaxError).part).toBe('footer');
    expect((err as TemplateSyntaxError).line).toBe(3);
    expect((err as TemplateSyntaxError).column).toBe(4);
  }
});

it('refuses unknown filters at save time, in partials too', () => {
  expect(() => checkTemplate(parts({ partials: { row: '{{ x | shout }}' } }))).toThrow(/partials.row line 1/);
});

it('fails a strict template on a missing variable, naming it; a lenient one renders empty', async () => {
  await expect(renderTemplate(parts({ base: '{{ order.customer.name }}' }), settings('strict'), { order: {} })).rejects.toThrow(TemplateRenderError);
  await expect(renderTemplate(parts({ base: '{{ order.customer.name }}' }), settings('strict'), { order: {} })).rejects.toThrow(/order.customer/);
  expect((await renderTemplate(parts({ base: '[{{ order.customer.name }}]' }), settings('lenient'), { order: {} })).html).toContain('<body>[]</body>');
});

it('escapes output unless marked raw, and keeps CSS inside its style element', async () => {
  const page = await renderTemplate(parts({ base: '{{ a }}|{{ a | raw }}', css: 'p{} </style><script>x</script>' }), settings('lenient'), { a: '<i>' });
  expect(page.html).toContain('<body>&lt;i&gt;|<i></body>');
  expect(page.html).not.toContain('</style><script>');
});

it('shows no prototype members and reads no files', async () => {
  const page = await renderTemplate(parts({ base: '{{ a.constructor }}{{ a.__proto__ }}{{ "x" | append: a.toString }}' }), settings('lenient'), { a: {} });
  expect(page.html).toContain('<body>x</body>');
  await expect(renderTemplate(parts({ base: '{% include "/etc/passwd" %}' }), settings('lenient'), {})).rejects.toThrow(TemplateRenderError);
});

it('turns newlines into real line breaks with newline_to_br, still escaping the text', async () => {
  const page = await renderTemplate(parts({ base: '<p>{{ note | newline_to_br }}</p>' }), settings('lenient'), { note: 'Deliver to <Ann & Co>\r\nGate "B"\nfloor 2' });
  expect(page.html).toContain('<p>Deliver to &lt;Ann &amp; Co&gt;<br />\nGate &#34;B&#34;<br />\nfloor 2</p>');
  expect(page.html).not.toContain('&lt;br');
  expect((await renderTemplate(parts({ base: '[{{ missing | newline_to_br }}]' }), settings('lenient'), {})).html).toContain('<body>[]</body>');
});

it('refuses output over TEMPLATE_LIMITS.outputChars, documents and notifications alike, and renders just under it', async () => {
  const loop = (times: number) => `{% for i in (1..${times}) %}{{ s }}{% endfor %}`;
  const s = 'x'.repeat(10_000);
  const over = TEMPLATE_LIMITS.outputChars / s.length + 1;
  await expect(renderTemplate(parts({ base: loop(over) }), settings('lenient'), { s })).rejects.toThrow(/^output: the rendered template is \d+ characters long, over the limit of 10000000/);
  await expect(renderNotificationParts('email', { subject: 'x', text: loop(over) }, { s })).rejects.toThrow(TemplateRenderError);
  expect((await renderTemplate(parts({ base: loop(over - 2) }), settings('lenient'), { s })).html.length).toBeLessThan(TEMPLATE_LIMITS.outputChars);
});
