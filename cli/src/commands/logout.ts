import { TollgateCommand } from '../base-command.js';

export default class Logout extends TollgateCommand<typeof Logout> {
  static override summary = 'End this session and forget its stored credentials.';

  static override examples = ['<%= config.bin %> <%= command.id %>'];

  async run(): Promise<void> {
    const { loadCredentials, deleteCredentials } = await import('../credentials.js');
    const stored = await loadCredentials(this.flags.profile);
    let ended = false;
    if (stored) {
      // Best effort, refreshing an expired access token first so the session really ends on the
      // server; the local credentials go even when the API cannot be reached.
      ended = await this.call('POST', '/v1/auth/logout').then(
        () => true,
        () => false,
      );
      await deleteCredentials(this.flags.profile);
    }
    if (this.jsonMode) {
      this.outJson({ logged_out: stored !== undefined, session_ended: ended });
      return;
    }
    if (!stored) this.out('Not logged in; nothing to do.');
    else if (ended) this.out(`Logged out ${stored.user.email}.`);
    else this.out(`Forgot the credentials of ${stored.user.email} (the API could not end the session itself).`);
  }
}
