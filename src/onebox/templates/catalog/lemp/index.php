<?php
// Reads one row from the stack's MariaDB, to show the machines talking by name.
$db = new mysqli(getenv('DB_HOST'), getenv('DB_USER'), getenv('DB_PASSWORD'), getenv('DB_NAME'));
$row = $db->query('SELECT message FROM greetings WHERE id = 1')->fetch_row();
header('Content-Type: text/plain');
echo 'PHP ' . PHP_VERSION . ' on ' . gethostname() . ' says: ' . $row[0] . "\n";
