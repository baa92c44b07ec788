// Tests run in UTC so dates print the same everywhere.
process.env.TZ = 'UTC';

module.exports = {
  ...require('./.config/jest.config'),
};
