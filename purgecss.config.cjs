// Keeps only the Bootstrap rules the site's pages use (`make vendor` runs it; see Makefile).
// Class names are read as words from everything that can put them in a public page: our
// templates, the crispy-forms Bootstrap 5 templates, Django's form widgets (their input
// types, for [type=radio] and the like) and our Python that builds HTML (widgets, the
// Markdown renderer's tag list). SITE_PACKAGES is the virtualenv's, set by make.
// The Django admin has its own CSS and is left out, as are emails (their styles are inline).
const sitePackages = process.env.SITE_PACKAGES;
if (!sitePackages) {
  throw new Error("SITE_PACKAGES must name the virtualenv's site-packages (run make vendor)");
}

module.exports = {
  content: [
    "templates/*.html",
    "templates/{articles,booking,clinic,includes,newsletter}/**/*.html",
    `${sitePackages}/crispy_bootstrap5/templates/**/*.html`,
    `${sitePackages}/django/forms/widgets.py`,
    `${sitePackages}/django/forms/templates/django/forms/**/*.html`,
    "{clinic,articles,booking,newsletter}/**/!(migrations)/*.py",
    "{clinic,articles,booking,newsletter}/*.py",
  ],
  safelist: {
    // Built in templates from a value: alert-{{ message.tags }} (error shows as danger).
    standard: [/^alert-(info|success|warning|danger|debug)$/],
  },
  // Custom properties no kept rule reads go too; keyframes and font faces are kept whole.
  variables: true,
  keyframes: false,
  fontFace: false,
};
