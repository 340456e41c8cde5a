/** The migrations, in order. Listed explicitly so that discovery needs no file globbing. */
import { Migration20261129050406_Initial } from './Migration20261129050406_Initial.js';
import { Migration20261129051039_Tasks } from './Migration20261129051039_Tasks.js';
import { Migration20261129051944_Chat } from './Migration20261129051944_Chat.js';
import { Migration20261206110000_RefreshGrace } from './Migration20261206110000_RefreshGrace.js';
import { Migration20261206130000_Reminders } from './Migration20261206130000_Reminders.js';
import { Migration20261206140000_PushSubscriptions } from './Migration20261206140000_PushSubscriptions.js';
import { Migration20261206142528_StopReason } from './Migration20261206142528_StopReason.js';
import { Migration20261207090000_Search } from './Migration20261207090000_Search.js';
import { Migration20261207100000_AccountSecurity } from './Migration20261207100000_AccountSecurity.js';

export const migrationsList = [
  { name: 'Migration20261129050406_Initial', class: Migration20261129050406_Initial },
  { name: 'Migration20261129051039_Tasks', class: Migration20261129051039_Tasks },
  { name: 'Migration20261129051944_Chat', class: Migration20261129051944_Chat },
  { name: 'Migration20261206110000_RefreshGrace', class: Migration20261206110000_RefreshGrace },
  { name: 'Migration20261206130000_Reminders', class: Migration20261206130000_Reminders },
  { name: 'Migration20261206140000_PushSubscriptions', class: Migration20261206140000_PushSubscriptions },
  { name: 'Migration20261206142528_StopReason', class: Migration20261206142528_StopReason },
  { name: 'Migration20261207090000_Search', class: Migration20261207090000_Search },
  { name: 'Migration20261207100000_AccountSecurity', class: Migration20261207100000_AccountSecurity },
];
