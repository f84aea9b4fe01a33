import { describe, expect, it } from 'vitest';
import { buildReviewPage } from '../../review/build.ts';

describe('the review page build', () => {
  const files = buildReviewPage();
  const text = (name: string) => new TextDecoder().decode(files.get(name));

  it('bundles the page with the typed client into one small script, without zod or the AWS SDK', () => {
    expect([...files.keys()].sort()).toEqual(['app.js', 'app.js.map', 'index.html', 'style.css']);
    const app = text('app.js');
    expect(app).toContain('/v1/jobs');
    expect(app).not.toMatch(/from ?['"](zod|node:|@aws-sdk)/);
    expect(app.length).toBeLessThan(40_000);
  });

  it('has no inline script, style or handler, so the strict CSP lets it run', () => {
    const html = text('index.html');
    expect(html).toContain('<script type="module" src="review/app.js"></script>');
    expect(html).toContain('href="review/style.css"');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    // Nothing is ever submitted: a key typed into the page cannot end up in a URL.
    expect(html).not.toMatch(/<form/i);
  });
});
