CREATE TABLE greetings (id INT PRIMARY KEY, message VARCHAR(200) NOT NULL);
INSERT INTO greetings VALUES (1, 'Hello from MariaDB');
